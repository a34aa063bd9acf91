"""The Compose model of an AFASA checkout: files, .env interpolation, project and network names."""
