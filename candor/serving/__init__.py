"""What the HTTP API and the chat page share: starting a generation (self-critiqued or not) and
the self-critique audit records. Both surfaces import from here, never from each other."""
