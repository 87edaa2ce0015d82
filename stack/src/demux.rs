//! Demultiplexing: 4-tuples to connections, local ports to listeners.
