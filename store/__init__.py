"""The store: models, migrations, the case lifecycle, intake and the record."""
