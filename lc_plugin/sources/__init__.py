"""Download sources behind one interface (``base.Source``): STAC + COGs, Sentinel Hub Process API."""
