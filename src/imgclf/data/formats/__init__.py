"""Format readers: class folders, tables, arrays, the built-in sets and prediction inputs, each
read into a DataSource (or, for prediction, a list of image files); one folder walker
(``files.walk_folder``) and one path-column reader (``table.path_cells``) serve them all."""
