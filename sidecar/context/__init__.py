"""What the prompt of a batch knows beyond the batch itself: how usual its activity is at its
camera and hour of the week, and what the same home's other cameras saw just before."""
