"""timeseries"""
