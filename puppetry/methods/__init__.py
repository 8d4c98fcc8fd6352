"""Method slices: one folder per method of our papers, each holding its networks, engine and recipes.

``descriptor.py`` says what a method declares about itself and ``registry.py`` lists the methods; the
folders beside them are the methods. Nothing outside this package imports a method's folder: the
shared layers reach methods through :mod:`puppetry.methods.registry` only.
"""
