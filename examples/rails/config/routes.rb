# frozen_string_literal: true

Rails.application.routes.draw do
  get "/invoices", to: "invoices#index"
end
