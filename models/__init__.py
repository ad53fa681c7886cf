"""SharpRay models: definitions, training and export (torch), and the torch-free parts the node
uses at serving time (``manifest``, ``tiling``, ``sharpness``)."""
