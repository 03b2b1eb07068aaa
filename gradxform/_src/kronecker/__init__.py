"""Kronecker-factored preconditioners (Shampoo, SOAP, PSGD-Kron) and their primitives."""
