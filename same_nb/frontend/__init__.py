"""Front end: a notebook file becomes the Pipeline IR.

Reading and validating the notebook, the tag grammar, grouping cells into steps, the parameters cell,
IPython syntax, static analysis and data flow, the DAG, the IR itself and same.yaml. Pure analysis:
nothing here runs user code, writes files or touches the run store.

May import: ``same_nb.errors``, ``same_nb._version`` and its own modules. Nothing else in the package.
"""
