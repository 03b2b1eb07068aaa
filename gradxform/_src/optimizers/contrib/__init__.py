"""Recent optimizers, as optax.contrib has them: Muon, schedule-free, Prodigy, ADOPT,
AdEMAMix, Sophia. Their public names live at ``gradxform.<name>``."""
