"""From a checkpoint to a working recogniser: predict, stream, export, benchmark."""
