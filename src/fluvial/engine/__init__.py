"""The engine: the state machines of a task run and of a flow run, and the driver-side
bookkeeping (argument dependencies, submission, tracking) every runner shares."""
