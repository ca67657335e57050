"""LoTLIP reproduction."""
