"""Builders of the DICOM result objects, one module per object."""
