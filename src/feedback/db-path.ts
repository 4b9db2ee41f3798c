// The code lives outside feedback/ so that the stdio shim can name the database without loading the store's modules.
export * from '../db-location.js';
