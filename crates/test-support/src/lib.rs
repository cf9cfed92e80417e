//! Test support: fake providers speaking real wire formats, recording what they receive.
