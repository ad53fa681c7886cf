"""SharpRay node: receive radiographs, correct motion blur, classify, return DICOM results."""

__version__ = "0.1.0"
