"""`lakeops rehearse`: the whole multi-account lifecycle, offline, against an embedded emulator."""
