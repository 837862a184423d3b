"""The REST framework plumbing every app's API shares (NetBox's netbox/api/ is the model)."""
