"""Everything demo: the generated organisation, its cost source and its savings scanner (no credentials needed)."""
