//! The driftsum agent: serving one database's trees over HTTP, and a client
//! that walks a remote tree. Not built yet.
