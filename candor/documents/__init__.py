"""Long documents: read them, split them into passages, retrieve, pack into the window, cite.

    extract.py   bytes -> Document (text + pages/blocks); pdf.py, docx.py for those formats
    passages.py  sentences and passages as spans of the text (page and character offsets)
    index.py     BM25 + MiniLM retrieval, cached by content hash
    blocks.py    Anthropic `document` blocks -> DocumentInput
    pack.py      whole or retrieved, within the token budget, with citation handles
    place.py     the conversation with its documents, measured with the model's own tokenizer
    cite.py      server-side citation choice (see its docstring for how)
"""
