// The linearizability and watch-guarantee checker (the checker issue fills this folder).
export {};
