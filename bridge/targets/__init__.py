"""Publishing targets: one small module per platform behind one narrow interface (base.Target)."""
