"""Recent optimizers, as optax.contrib has them: Muon, schedule-free, Prodigy, ADOPT,
AdEMAMix, Sophia, COCOB, DoG, DoWG, D-Adaptation, Mechanic, MADGRAD, MoMo, ACProp, GaLore,
SAM and DP-SGD. Their public names live at ``gradxform.contrib.<name>`` only."""
