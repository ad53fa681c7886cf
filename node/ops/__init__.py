"""Operations: the HTTP app (health, metrics, and later DICOMweb and the dashboard)."""
