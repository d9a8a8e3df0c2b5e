"""What the prompt of a batch knows beyond the batch itself: how usual its activity is at its
camera and hour of the week, what the same home's other cameras saw just before, the home's state,
the owner's notes and judgements, zones, and whether the camera's view looks tampered with."""
