//! Running the planned levels (placeholder).
