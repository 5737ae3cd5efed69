"""What the HTTP API and the chat page share: starting a generation (self-critiqued or not), the
self-critique audit records, documents (read, placed, cited) and uploads (ownership, multipart
bodies). Both surfaces import from here, never from each other."""
