"""`emu-video demo`: a web page (Gradio) over the pipelines.

`runs` holds the model and runs it (no Gradio), `uploads` checks uploaded files (no Gradio), and `app` builds
the page and serves it (needs the `demo` extra: `pip install 'emu-video[demo]'`).
"""
