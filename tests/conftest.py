"""The whole suite runs in float64 so that parity means agreement to round-off."""

import jax

jax.config.update("jax_enable_x64", True)
