"""The live dashboard at ``/dashboard``: a static page (``static/``), the JSON it polls (``view.py``,
``routes.py``) and the in-process ring buffer behind its charts (``series.py``)."""
