"""A study's run: its command shell and anatomy, its folder, record, identity and resumable parts."""
