"""Attacks on the integration, one module per attacker: the uploader (whatever writes camera
folders), the disk, and a hostile or failing sidecar."""
