// A worker module that never calls serveModel(): Pool.create must give up on it, not hang.
export {};
