"""What the AI is told about the home besides the frames: the options steps for notes, zones and
home entities, the home's state, known plates and the owner's feedback sent to the sidecar."""
