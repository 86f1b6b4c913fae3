"""C runtime headers shipped with every generated library, and the host runner used by tests."""
