"""The OCPI 2.2.1 side of the CSMS: our versions and credentials, partner calls, location publishing."""
