"""What every kind of order shares: its lifecycle table and the one writer of its state."""
