"""An AWS emulator for rehearsals: moto server over TLS, with the gaps our templates hit filled in honestly."""
