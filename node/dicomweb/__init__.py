"""DICOMweb (PS3.18): QIDO-RS, WADO-RS and their helpers; STOW-RS lives in node.receive.dicomweb."""
