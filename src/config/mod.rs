//! routes.yaml: the schema (`types`), loading with `${VAR}` interpolation and `file:line:col`
//! errors (`load`), and the duration / rate syntax (`duration`).

pub mod types;
