// hostshim's version: in the banner of every generated shim and in its mark.
// A test keeps it equal to package.json's.
export const VERSION = '0.1.0'
