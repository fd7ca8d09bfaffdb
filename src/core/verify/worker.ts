// Placeholder: the sql.js verifier worker.
export {};
