"""What the machine has and does: threads, memory, busy detection, installed versions, optional packages."""
