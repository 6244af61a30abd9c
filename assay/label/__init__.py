"""label: Argilla client side (push, pull, agreement) and the embedded server stack (`assay.label.server`)."""
