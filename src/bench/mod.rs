//! `driftsum bench`: synthetic source/replica pairs of several sizes, the
//! comparison cost of each, as a table, CSV, JSON and an SVG plot. Not built yet.
