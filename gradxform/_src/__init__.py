"""Implementation modules. The public path of every name is ``gradxform.<name>``."""
