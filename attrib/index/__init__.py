"""The FAISS index files of a gallery."""
