"""A real Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``) for tests and benches."""
