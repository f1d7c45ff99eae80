"""Engine-side queries and figures behind the app's pages (no Streamlit here).

Each page calls one module: ``strategies``, ``prompt_lab``, ``portfolio``,
``decisions``, ``digest``, ``leaderboard``; ``forms`` turns the New strategy
form into a ``UserRequest``; ``charts`` builds the plotly figures; ``memo``
keeps expensive results until the data changes.
"""
