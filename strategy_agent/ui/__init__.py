"""Streamlit pieces shared by the pages: header and widgets, the cycle view, the create form."""
